import { graphql } from '../generated/graphql/gql.js';

// Every operation the SDK, the CLI and automation use. Types come from
// schema/schema.graphql through GraphQL Code Generator (npm run codegen).

export const TaskFields = graphql(`
  fragment TaskFields on Task {
    id
    name
    kind
    params
    status
    progress
    message
    attempt
    maxAttempts
    workerId
    timeoutMinutes
    heartbeatTimeoutSeconds
    stallTimeoutMinutes
    error
    result
    createdAt
    startedAt
    lastHeartbeatAt
    lastProgressAt
    completedAt
    durationSeconds
    isStuck
    stuckReason
    stuckSince
    stuckForSeconds
    priority
    runAt
    idempotencyKey
    waitingFor
  }
`);

export const TaskEventFields = graphql(`
  fragment TaskEventFields on TaskEvent {
    id
    taskId
    kind
    type
    fromStatus
    toStatus
    progress
    message
    actor
    reason
    attempt
    at
  }
`);

export const CreateTaskDocument = graphql(`
  mutation CreateTask($input: CreateTaskInput!) {
    createTask(input: $input) {
      ...TaskFields
    }
  }
`);

export const GetTaskDocument = graphql(`
  query GetTask($id: ID!, $events: Int! = 500) {
    task(id: $id) {
      ...TaskFields
      dependsOn {
        id
        name
        status
      }
      dependants {
        id
        name
        status
      }
      events(first: $events) {
        ...TaskEventFields
      }
    }
  }
`);

export const ListTasksDocument = graphql(`
  query ListTasks($status: [TaskStatus!], $kind: String, $first: Int, $after: String) {
    tasks(status: $status, kind: $kind, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          ...TaskFields
        }
      }
    }
  }
`);

export const StuckTasksDocument = graphql(`
  query StuckTasks($timeoutMinutes: Float) {
    stuckTasks(timeoutMinutes: $timeoutMinutes) {
      ...TaskFields
    }
  }
`);

export const TaskStatsDocument = graphql(`
  query TaskStats($since: DateTime) {
    taskStats(since: $since) {
      since
      total
      pending
      running
      completed
      failed
      cancelled
      stuck
      successRate
      averageDurationSeconds
      oldestRunning {
        ...TaskFields
      }
      byKind {
        kind
        total
        pending
        running
        completed
        failed
        cancelled
        successRate
      }
    }
    monitor {
      enabled
      running
      intervalSeconds
      timeoutMinutes
      heartbeatTimeoutSeconds
      stallTimeoutMinutes
      graceUntil
      lastDetectionDelaySeconds
      action
      lastSweepAt
      nextSweepAt
      lastSweepScanned
      lastSweepFound
      lastSweepFixed
      lastSweepDurationMs
      consecutiveFailures
      lastError
    }
  }
`);

export const TaskEventsDocument = graphql(`
  query TaskEvents($taskId: ID, $kinds: [String!], $afterEventId: ID, $first: Int! = 100) {
    taskEvents(taskId: $taskId, kinds: $kinds, afterEventId: $afterEventId, first: $first) {
      ...TaskEventFields
    }
  }
`);

export const StopTaskDocument = graphql(`
  mutation StopTask($id: ID!, $reason: String) {
    stopTask(id: $id, reason: $reason) {
      ...TaskFields
    }
  }
`);

export const ForceCompleteDocument = graphql(`
  mutation ForceComplete($id: ID!, $status: TaskStatus! = CANCELLED, $reason: String) {
    forceComplete(id: $id, status: $status, reason: $reason) {
      ...TaskFields
    }
  }
`);

export const DeleteTaskDocument = graphql(`
  mutation DeleteTask($id: ID!) {
    deleteTask(id: $id)
  }
`);

export const CleanupStuckDocument = graphql(`
  mutation CleanupStuck($timeoutMinutes: Float, $autoFix: Boolean! = false, $action: StuckAction! = CANCEL) {
    cleanupStuck(timeoutMinutes: $timeoutMinutes, autoFix: $autoFix, action: $action) {
      autoFix
      action
      timeoutMinutes
      found {
        ...TaskFields
      }
      fixed {
        ...TaskFields
      }
    }
  }
`);

export const RunMonitorSweepDocument = graphql(`
  mutation RunMonitorSweep {
    runMonitorSweep {
      ran
      startedAt
      finishedAt
      action
      timeoutMinutes
      scanned
      alerted
      found {
        ...TaskFields
      }
      fixed {
        ...TaskFields
      }
    }
  }
`);

export const ClaimTaskDocument = graphql(`
  mutation ClaimTask($workerId: String!, $kinds: [String!]) {
    claimTask(workerId: $workerId, kinds: $kinds) {
      leaseToken
      heartbeatIntervalSeconds
      task {
        ...TaskFields
      }
    }
  }
`);

export const StartTaskDocument = graphql(`
  mutation StartTask($id: ID!, $workerId: String!) {
    startTask(id: $id, workerId: $workerId) {
      leaseToken
      heartbeatIntervalSeconds
      task {
        ...TaskFields
      }
    }
  }
`);

export const ReportProgressDocument = graphql(`
  mutation ReportProgress($id: ID!, $leaseToken: String!, $progress: Float, $message: String) {
    reportProgress(id: $id, leaseToken: $leaseToken, progress: $progress, message: $message) {
      id
      status
      progress
      message
      lastHeartbeatAt
    }
  }
`);

export const ReportProgressBatchDocument = graphql(`
  mutation ReportProgressBatch($reports: [ProgressReportInput!]!) {
    reportProgressBatch(reports: $reports) {
      id
      accepted
      code
    }
  }
`);

export const CompleteTaskDocument = graphql(`
  mutation CompleteTask($id: ID!, $leaseToken: String!, $result: JSON) {
    completeTask(id: $id, leaseToken: $leaseToken, result: $result) {
      ...TaskFields
    }
  }
`);

export const FailTaskDocument = graphql(`
  mutation FailTask($id: ID!, $leaseToken: String!, $error: String!, $retryable: Boolean) {
    failTask(id: $id, leaseToken: $leaseToken, error: $error, retryable: $retryable) {
      ...TaskFields
    }
  }
`);

export const ReleaseTaskDocument = graphql(`
  mutation ReleaseTask($id: ID!, $leaseToken: String!, $reason: String) {
    releaseTask(id: $id, leaseToken: $leaseToken, reason: $reason) {
      id
      status
    }
  }
`);

export const TaskUpdatedDocument = graphql(`
  subscription TaskUpdated($id: ID, $kinds: [String!], $afterEventId: ID) {
    taskUpdated(id: $id, kinds: $kinds, afterEventId: $afterEventId) {
      ...TaskEventFields
      task {
        ...TaskFields
      }
    }
  }
`);

export const TaskProgressDocument = graphql(`
  subscription TaskProgress($id: ID!) {
    taskProgress(id: $id) {
      ...TaskFields
    }
  }
`);

export const StuckTaskDetectedDocument = graphql(`
  subscription StuckTaskDetected {
    stuckTaskDetected {
      reason
      stuckSince
      stuckForSeconds
      detectedAt
      actionTaken
      actor
      task {
        ...TaskFields
      }
    }
  }
`);

export const ApiTokenFields = graphql(`
  fragment ApiTokenFields on ApiToken {
    name
    role
    source
    createdAt
    createdBy
    lastUsedAt
    revokedAt
  }
`);

export const ApiTokensDocument = graphql(`
  query ApiTokens {
    apiTokens {
      ...ApiTokenFields
    }
  }
`);

export const CreateApiTokenDocument = graphql(`
  mutation CreateApiToken($name: String!, $role: TokenRole!) {
    createApiToken(name: $name, role: $role) {
      token
      apiToken {
        ...ApiTokenFields
      }
    }
  }
`);

export const RevokeApiTokenDocument = graphql(`
  mutation RevokeApiToken($name: String!) {
    revokeApiToken(name: $name) {
      ...ApiTokenFields
    }
  }
`);

export const KindQueueFields = graphql(`
  fragment KindQueueFields on KindQueue {
    kind
    pending
    delayed
    blocked
    running
    limit
    paused
    oldestReadyAgeSeconds
  }
`);

export const QueuesDocument = graphql(`
  query Queues {
    queues {
      ...KindQueueFields
    }
  }
`);

export const CreateTasksDocument = graphql(`
  mutation CreateTasks($inputs: [CreateTaskInput!]!) {
    createTasks(inputs: $inputs) {
      ...TaskFields
    }
  }
`);

export const SetKindLimitDocument = graphql(`
  mutation SetKindLimit($kind: String!, $maxRunning: Int) {
    setKindLimit(kind: $kind, maxRunning: $maxRunning) {
      ...KindQueueFields
    }
  }
`);

export const PauseKindDocument = graphql(`
  mutation PauseKind($kind: String!) {
    pauseKind(kind: $kind) {
      ...KindQueueFields
    }
  }
`);

export const ResumeKindDocument = graphql(`
  mutation ResumeKind($kind: String!) {
    resumeKind(kind: $kind) {
      ...KindQueueFields
    }
  }
`);

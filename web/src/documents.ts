import { graphql } from './generated/graphql/gql.js';

// The dashboard's own operations: lighter task fields than the SDK's (no
// params or result, which may be large) for rows that update many times a
// second. The detail view and the actions use the SDK's operations.

export const BoardTaskFields = graphql(`
  fragment BoardTaskFields on Task {
    id
    name
    kind
    status
    progress
    message
    attempt
    maxAttempts
    workerId
    createdAt
    startedAt
    completedAt
    durationSeconds
    isStuck
    stuckReason
    stuckSince
    stuckForSeconds
    priority
    runAt
    waitingFor
  }
`);

export const BoardTasksDocument = graphql(`
  query BoardTasks($status: [TaskStatus!], $kind: String, $search: String, $first: Int, $after: String, $last: Int, $before: String) {
    tasks(status: $status, kind: $kind, search: $search, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo {
        hasNextPage
        hasPreviousPage
        startCursor
        endCursor
      }
      edges {
        node {
          ...BoardTaskFields
        }
      }
    }
  }
`);

export const BoardOverviewDocument = graphql(`
  query BoardOverview($running: Int!) {
    queues {
      ...KindQueueFields
    }
    viewer {
      role
    }
    taskStats {
      total
      pending
      running
      completed
      failed
      cancelled
      stuck
      successRate
      averageDurationSeconds
      byKind {
        kind
      }
    }
    monitor {
      enabled
      intervalSeconds
      heartbeatTimeoutSeconds
      stallTimeoutMinutes
      action
      lastSweepAt
    }
    taskOutcomes(bucketMinutes: 60) {
      start
      completed
      failed
      cancelled
    }
    running: tasks(status: [RUNNING], first: $running) {
      totalCount
      edges {
        node {
          ...BoardTaskFields
        }
      }
    }
  }
`);

export const BoardUpdatesDocument = graphql(`
  subscription BoardUpdates($afterEventId: ID) {
    taskUpdated(afterEventId: $afterEventId) {
      ...TaskEventFields
      task {
        ...BoardTaskFields
      }
    }
  }
`);

export const BoardAlertsDocument = graphql(`
  subscription BoardAlerts {
    stuckTaskDetected {
      reason
      stuckSince
      stuckForSeconds
      detectedAt
      actionTaken
      actor
      task {
        ...BoardTaskFields
      }
    }
  }
`);

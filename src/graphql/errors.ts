import { PothosValidationError } from '@pothos/core';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { TaskwardenError } from '../errors.js';

/**
 * The one place that decides what an error looks like to a client. A
 * TaskwardenError keeps its message and gets its `extensions.code`; a
 * GraphQL parse, validation or variable error gets a code too; anything else
 * is unexpected and becomes a bare INTERNAL_SERVER_ERROR, so no stack trace
 * or SQL ever reaches a client (the server logs the original).
 */
export function maskError(error: unknown, message: string): Error {
  const graphqlError = error instanceof GraphQLError ? error : undefined;
  const original = graphqlError?.originalError ?? error;
  const where = { nodes: graphqlError?.nodes, path: graphqlError?.path, source: graphqlError?.source, positions: graphqlError?.positions };

  const known =
    original instanceof TaskwardenError
      ? { code: original.code, ...original.details }
      : original instanceof PothosValidationError
        ? { code: 'BAD_USER_INPUT' }
        : undefined;
  if (known) {
    // Returning the same error (with its code added) tells yoga it is expected: no error log.
    if (graphqlError) return withExtensions(graphqlError, known);
    return new GraphQLError((original as Error).message, { extensions: known });
  }
  if (graphqlError && (!graphqlError.originalError || graphqlError.originalError instanceof GraphQLError)) {
    return graphqlError.extensions?.code ? graphqlError : withExtensions(graphqlError, { code: codeOf(graphqlError) });
  }
  return new GraphQLError(message, { ...where, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
}

function withExtensions(error: GraphQLError, extensions: Record<string, unknown>): GraphQLError {
  Object.assign(error.extensions as Record<string, unknown>, extensions);
  return error;
}

// Values that do not fit an argument's type: an unknown status, a string for a number, a missing required value.
const valueError =
  /^(Variable "\$.*(got invalid value|of required type|of non-null type)|Argument ".*(has invalid value|of type ".*" is required)|Enum "|Expected value of type|(Int|Float|String|Boolean|ID|DateTime|JSON) cannot represent|Value ".*" does not exist|Field ".*" of required type ".*" was not provided)/;

function codeOf(error: GraphQLError): string {
  if (error.message.startsWith('Syntax Error')) return 'GRAPHQL_PARSE_FAILED';
  return valueError.test(error.message) ? 'BAD_USER_INPUT' : 'GRAPHQL_VALIDATION_FAILED';
}

/**
 * Validation errors about argument values (e.g. `status: FOO`) are the
 * caller's bad input, not a malformed query: give them BAD_USER_INPUT like
 * the ones found at execution.
 */
export function useInputErrorCodes(): Plugin {
  return {
    onValidate:
      () =>
      ({ result, setResult }) => {
        if (!result.some((error) => valueError.test(error.message))) return;
        setResult(
          result.map((error) =>
            valueError.test(error.message)
              ? new GraphQLError(error.message, {
                  nodes: error.nodes,
                  source: error.source,
                  positions: error.positions,
                  extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
                })
              : error,
          ),
        );
      },
  };
}

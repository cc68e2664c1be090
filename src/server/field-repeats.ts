import { GraphQLError, type ASTVisitor, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * Refuses the same field asked for again and again in one selection set
 * (`{ __typename __typename ... }` 500 times): valid GraphQL, since repeats
 * merge, but pure parsing and validation work for the server. graphql-armor's
 * limits count tokens, aliases and depth, not this.
 */
export function useFieldRepeatLimit(max: number): Plugin {
  const rule = (context: ValidationContext): ASTVisitor => ({
    SelectionSet(node) {
      const counts = new Map<string, number>();
      for (const selection of node.selections) {
        if (selection.kind !== 'Field') continue;
        const key = selection.alias?.value ?? selection.name.value;
        const count = (counts.get(key) ?? 0) + 1;
        counts.set(key, count);
        if (count === max + 1) {
          context.reportError(
            new GraphQLError(`Field "${key}" is selected more than ${max} times in one selection set.`, {
              nodes: [selection],
              extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
            }),
          );
        }
      }
    },
  });
  return { onValidate: ({ addValidationRule }) => addValidationRule(rule) };
}

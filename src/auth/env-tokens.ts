import { badInput } from '../errors.js';
import { roles, type Role } from './roles.js';

/** A token given at start (TASKWARDEN_TOKENS=name:role:secret,...) for deployments that keep secrets in their orchestrator. */
export interface EnvToken {
  name: string;
  role: Role;
  secret: string;
}

/** The one rule for a token's name, whether minted through the API or given in the environment. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

/** A token name, or BAD_USER_INPUT saying what a name may be. */
export const tokenName = (name: string) => {
  if (!NAME.test(name)) throw badInput('name', 'must be 1 to 64 letters, digits or _ . @ -, starting with a letter or digit');
  return name;
};

/** TASKWARDEN_TOKENS: `name:role:secret` entries separated by commas; undefined when one is not. */
export function parseEnvTokens(text: string): EnvToken[] | undefined {
  const tokens: EnvToken[] = [];
  for (const entry of text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [name = '', role = '', ...rest] = entry.split(':');
    const secret = rest.join(':');
    if (!NAME.test(name) || !(roles as readonly string[]).includes(role) || secret.length < 16) return undefined;
    tokens.push({ name, role: role as Role, secret });
  }
  return tokens;
}

export const envTokensExpected = `expected name:role:secret entries separated by commas, role one of ${roles.join(', ')}, secret at least 16 characters`;

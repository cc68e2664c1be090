import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';

/** The extensions every embedded database loads: the migrations create pg_trgm (name search), so PGlite must have it. */
export const pgliteExtensions = { pg_trgm };

/** Errors the server answers with, in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`. */

export type ErrorType =
  | 'invalid_request_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: ErrorType = status === 404
      ? 'not_found_error'
      : status === 429
        ? 'rate_limit_error'
        : status === 503
          ? 'service_unavailable'
          : status >= 500
            ? 'server_error'
            : 'invalid_request_error',
    /** Extra response headers (Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request field: the message names the field, what was expected and what was found. */
export function badParam(param: string, expected: string, found: unknown, code = 'invalid_value'): ApiError {
  return new ApiError(400, `${param}: expected ${expected}, found ${describe(found)}`, param, code);
}

/** A short, safe rendering of a value for error messages (never a whole data URL or a huge array). */
export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') {
    if (v.startsWith('data:')) return `a data URL (${v.length} chars)`;
    return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}… (${v.length} chars)` : JSON.stringify(v);
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

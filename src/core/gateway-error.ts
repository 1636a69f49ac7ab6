/**
 * The closed set of error codes for the unexpected: infrastructure down, configuration wrong.
 * Expected outcomes (a wrong password, a revoked credential) are values, never GatewayErrors.
 */
export const GATEWAY_ERROR_CODES = [
  'PG_CONFIG_INVALID',
  'PG_STORE_UNAVAILABLE',
  'PG_STORE_CONFLICT',
  'PG_NOT_FOUND',
  'PG_INVALID_INPUT',
  /** The actor may not do this (a portal user acting on another's password, or on what only admins set). */
  'PG_FORBIDDEN',
  'PG_LIMIT_REACHED',
  'PG_TOKEN_UNAVAILABLE',
  /** An upstream (SMTP relay, IMAP login) failed or refused: `UpstreamError` in core/ports/upstream-failure.ts says how. */
  'PG_UPSTREAM_FAILED',
  'PG_OVERLOADED',
  /** A file the operator named (`store export --out`, `store import --in`) could not be read or written. */
  'PG_FILE_FAILED',
] as const;
export type GatewayErrorCode = (typeof GATEWAY_ERROR_CODES)[number];

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
  }
}

export function isGatewayError(error: unknown, code?: GatewayErrorCode): error is GatewayError {
  return error instanceof GatewayError && (code === undefined || error.code === code);
}

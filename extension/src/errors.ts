/**
 * How the frontend reads an error reply of the lepton API (also free of JupyterLab imports).
 */

export class LeptonApiError extends Error {
  constructor(
    readonly status: number,
    readonly kind: string,
    message: string
  ) {
    super(message);
    this.name = 'LeptonApiError';
  }

  /** A line for the sidebar, e.g. "Not found: no cluster 'x' ...". */
  get userMessage(): string {
    const prefix = describeStatus(this.status);
    return prefix ? `${prefix}: ${this.message}` : this.message;
  }
}

export function describeStatus(status: number): string {
  switch (status) {
    case 400:
      return 'Invalid request';
    case 403:
      return 'Not allowed';
    case 404:
      return 'Not found';
    case 409:
      return 'Conflict';
    default:
      return status >= 500 ? 'Server error' : '';
  }
}

/**
 * Build the error for a non-2xx reply. The server answers {"error", "message"}; proxies and
 * older servers may answer HTML or {"message", "reason"}, so every shape degrades to a message.
 */
export function errorFromResponse(status: number, statusText: string, bodyText: string): LeptonApiError {
  let kind = 'HTTPError';
  let message = statusText || `HTTP ${status}`;
  try {
    const body = JSON.parse(bodyText) as Record<string, unknown>;
    if (body && typeof body === 'object') {
      if (typeof body.error === 'string') {
        kind = body.error;
      }
      if (typeof body.message === 'string' && body.message) {
        message = body.message;
      } else if (typeof body.reason === 'string' && body.reason) {
        message = body.reason;
      }
    }
  } catch {
    if (bodyText && bodyText.length < 300 && !bodyText.trimStart().startsWith('<')) {
      message = bodyText.trim();
    }
  }
  return new LeptonApiError(status, kind, message);
}

/** Parse a successful reply; an empty body (204) is null. */
export function parseSuccess<T>(bodyText: string): T {
  return (bodyText ? JSON.parse(bodyText) : null) as T;
}

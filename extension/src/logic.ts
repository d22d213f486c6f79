/**
 * Pure helpers (no JupyterLab imports) so jest can test them directly.
 */

export type ParamValue = string | number | boolean | null | ParamValue[] | { [k: string]: ParamValue };

export interface IParsedParameters {
  parameters: Record<string, ParamValue>;
  /** Assignments whose value is not a plain literal (expressions, calls): not prefilled. */
  skipped: string[];
}

const ASSIGN = /^([A-Za-z_][A-Za-z0-9_]*)\s*(?::\s*[^=]+)?=(?!=)\s*(.+)$/;

/** Strip a trailing `# comment` that is not inside a string literal. */
export function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\') {
        i++;
      } else if (c === quote) {
        quote = null;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#') {
      return line.slice(0, i);
    }
  }
  return line;
}

/** Turn a Python literal into JSON text: quotes, True/False/None, trailing commas. */
function pythonLiteralToJson(text: string): string {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && i + 1 < text.length) {
        const next = text[i + 1];
        out += next === "'" ? "'" : c + next;
        i++;
      } else if (c === quote) {
        out += '"';
        quote = null;
      } else if (c === '"') {
        out += '\\"';
      } else {
        out += c;
      }
    } else if (c === '"' || c === "'") {
      quote = c;
      out += '"';
    } else {
      out += c;
    }
  }
  return out
    .replace(/\bTrue\b/g, 'true')
    .replace(/\bFalse\b/g, 'false')
    .replace(/\bNone\b/g, 'null')
    .replace(/\(/g, '[')
    .replace(/\)/g, ']')
    .replace(/,\s*([\]}])/g, '$1');
}

/** Parse one Python literal (number, string, bool, None, list/tuple/dict of those). */
export function parsePythonLiteral(text: string): { ok: true; value: ParamValue } | { ok: false } {
  const trimmed = text.trim();
  if (!trimmed) {
    return { ok: false };
  }
  try {
    return { ok: true, value: JSON.parse(pythonLiteralToJson(trimmed)) as ParamValue };
  } catch {
    return { ok: false };
  }
}

/** Read `name = literal` lines of a papermill `parameters` cell. */
export function parseParametersCell(source: string): IParsedParameters {
  const parameters: Record<string, ParamValue> = {};
  const skipped: string[] = [];
  for (const raw of source.split(/\r?\n/)) {
    if (/^\s/.test(raw)) {
      continue; // continuation lines and indented code are not top-level parameters
    }
    const line = stripComment(raw).trim();
    const match = ASSIGN.exec(line);
    if (!match) {
      continue;
    }
    const parsed = parsePythonLiteral(match[2]);
    if (parsed.ok) {
      parameters[match[1]] = parsed.value;
    } else {
      skipped.push(match[1]);
    }
  }
  return { parameters, skipped };
}

/** "950 ms", "12.3 s", "4 min 05 s", "2 h 03 min"; "-" for a missing duration. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds) || seconds < 0) {
    return '-';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const total = Math.round(seconds);
  if (total < 3600) {
    return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, '0')} s`;
  }
  const minutes = Math.floor(total / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** Timestamps from the API come as epoch seconds or ISO strings. */
export function toEpochSeconds(value: unknown): number | null {
  if (typeof value === 'number' && isFinite(value)) {
    return value > 1e12 ? value / 1000 : value;
  }
  if (typeof value === 'string' && value) {
    const ms = Date.parse(value);
    return isNaN(ms) ? null : ms / 1000;
  }
  return null;
}

/** A job's duration: its own field when present, else finished - started (or now - started). */
export function jobDuration(job: Record<string, unknown>, now: number = Date.now() / 1000): number | null {
  for (const key of ['duration', 'duration_s', 'elapsed']) {
    const v = job[key];
    if (typeof v === 'number') {
      return v;
    }
  }
  const start = toEpochSeconds(job['started'] ?? job['started_at'] ?? job['submitted']);
  if (start === null) {
    return null;
  }
  const end = toEpochSeconds(job['finished'] ?? job['finished_at'] ?? job['ended']);
  return (end ?? now) - start;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (!bytes || bytes <= 0) {
    return '-';
  }
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

/**
 * Python that attaches a notebook to a cluster launched by the server. Clusters launched with
 * TLS (the default) need their credentials folder (in the user's Jupyter runtime dir).
 */
export function connectCode(schedulerAddress: string, credentials?: string | null): string {
  const creds = credentials ? `, credentials=${JSON.stringify(credentials)}` : '';
  return ['import lepton_nb as ln', '', `cluster = ln.connect(${JSON.stringify(schedulerAddress)}${creds})`, 'cluster'].join('\n');
}

/**
 * What a cluster card says about a cluster's state, or null when there is nothing to say (a
 * running cluster). `state` may be missing in answers of an older server.
 */
export function clusterStateLabel(state: string | undefined): { text: string; title: string } | null {
  if (state === 're-attached') {
    return { text: 're-attached', title: 'launched before the server restarted; found again and connected' };
  }
  if (state === 'orphaned') {
    return { text: 'orphaned', title: 'a process of it lives but its scheduler does not answer: stop it' };
  }
  return null;
}

/** Compact "k=v" text for parameter and recorded-value dicts. */
export function formatKeyValues(values: unknown, maxLength = 80): string {
  if (!values || typeof values !== 'object') {
    return '';
  }
  const text = Object.entries(values as Record<string, unknown>)
    .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : JSON.stringify(v)}`)
    .join(', ');
  return text.length > maxLength ? text.slice(0, maxLength - 1) + '…' : text;
}

export const TERMINAL_STATUSES = new Set(['succeeded', 'success', 'done', 'completed', 'failed', 'error', 'cancelled', 'canceled', 'lost']);
export function isActive(status: string | undefined): boolean {
  return !!status && !TERMINAL_STATUSES.has(status);
}

/** Jobs that reached an end state since the previous poll (only ones seen active before). */
export function newlyFinished<J extends { id: string; status: string }>(previous: Map<string, string>, jobs: J[]): J[] {
  return jobs.filter(j => {
    const before = previous.get(j.id);
    return before !== undefined && isActive(before) && !isActive(j.status);
  });
}

/** "in 5 min", "in 2 h 3 min", "now": when a schedule fires next. */
export function formatUntil(epochSeconds: number | null, now: number = Date.now() / 1000): string {
  if (epochSeconds === null) {
    return 'paused';
  }
  const s = epochSeconds - now;
  return s <= 1 ? 'now' : `in ${formatDuration(s)}`;
}

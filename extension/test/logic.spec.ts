import {
  clusterStateLabel,
  connectCode,
  formatBytes,
  formatDuration,
  formatKeyValues,
  formatUntil,
  isActive,
  jobDuration,
  newlyFinished,
  parseParametersCell,
  parsePythonLiteral,
  stripComment,
  toEpochSeconds
} from '../src/logic';

describe('parseParametersCell', () => {
  it('reads papermill-style literal assignments', () => {
    const source = [
      '# Parameters',
      'epochs = 3',
      'lr = 1e-3  # learning rate',
      "name = 'mnist # not a comment'",
      'use_gpu: bool = False',
      'seed = None',
      'sizes = [128, 64,]',
      'shape = (28, 28)',
      'opts = {"momentum": 0.9, \'nesterov\': True}',
      '    indented = 1',
      'x == 3'
    ].join('\n');
    const { parameters, skipped } = parseParametersCell(source);
    expect(parameters).toEqual({
      epochs: 3,
      lr: 0.001,
      name: 'mnist # not a comment',
      use_gpu: false,
      seed: null,
      sizes: [128, 64],
      shape: [28, 28],
      opts: { momentum: 0.9, nesterov: true }
    });
    expect(skipped).toEqual([]);
  });

  it('skips assignments that are not plain literals', () => {
    const { parameters, skipped } = parseParametersCell('data_dir = os.path.join("a", "b")\nsteps = 10\nn = len(x)');
    expect(parameters).toEqual({ steps: 10 });
    expect(skipped).toEqual(['data_dir', 'n']);
  });

  it('handles CRLF sources, escapes and empty cells', () => {
    expect(parseParametersCell('a = 1\r\nb = "say \\"hi\\""').parameters).toEqual({ a: 1, b: 'say "hi"' });
    expect(parseParametersCell("q = 'it\\'s'").parameters).toEqual({ q: "it's" });
    expect(parseParametersCell('')).toEqual({ parameters: {}, skipped: [] });
  });
});

describe('literals and comments', () => {
  it('strips only comments outside strings', () => {
    expect(stripComment('x = 1 # c')).toBe('x = 1 ');
    expect(stripComment('s = "a#b" # c')).toBe('s = "a#b" ');
  });
  it('rejects non-literals', () => {
    expect(parsePythonLiteral('foo')).toEqual({ ok: false });
    expect(parsePythonLiteral('')).toEqual({ ok: false });
    expect(parsePythonLiteral('-2.5')).toEqual({ ok: true, value: -2.5 });
  });
});

describe('formatDuration', () => {
  it.each([
    [null, '-'],
    [undefined, '-'],
    [-1, '-'],
    [NaN, '-'],
    [0.25, '250 ms'],
    [12.34, '12.3 s'],
    [245, '4 min 05 s'],
    [7380, '2 h 03 min']
  ])('%p -> %p', (input, expected) => {
    expect(formatDuration(input as number | null | undefined)).toBe(expected);
  });
});

describe('job durations', () => {
  it('prefers an explicit duration', () => {
    expect(jobDuration({ duration: 3.5, started: 0 })).toBe(3.5);
  });
  it('computes from ISO or epoch timestamps and runs on for active jobs', () => {
    expect(jobDuration({ started: '2026-01-01T00:00:00Z', finished: '2026-01-01T00:01:30Z' })).toBe(90);
    expect(jobDuration({ submitted: 100 }, 160)).toBe(60);
    expect(jobDuration({ status: 'queued' })).toBeNull();
  });
  it('reads milliseconds and rejects junk', () => {
    expect(toEpochSeconds(1_700_000_000_000)).toBe(1_700_000_000);
    expect(toEpochSeconds('not a date')).toBeNull();
    expect(toEpochSeconds({})).toBeNull();
  });
});

describe('display helpers', () => {
  it('formats bytes', () => {
    expect(formatBytes(0)).toBe('-');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(4 * 1024 ** 3)).toBe('4.0 GiB');
    expect(formatBytes(300 * 1024 ** 2)).toBe('300 MiB');
  });
  it('formats key/value dicts compactly', () => {
    expect(formatKeyValues({ epochs: 1, lr: 0.0012345, name: 'x' })).toBe('epochs=1, lr=0.001234, name="x"');
    expect(formatKeyValues(null)).toBe('');
    expect(formatKeyValues({ long: 'y'.repeat(100) }, 20)).toHaveLength(20);
  });
  it('writes connect code with a quoted address', () => {
    expect(connectCode('tcp://127.0.0.1:8786')).toContain('ln.connect("tcp://127.0.0.1:8786")');
  });
  it('passes the TLS credentials folder of a secure cluster', () => {
    expect(connectCode('tls://127.0.0.1:8786', '/run/u/lepton-clusters/ab')).toContain(
      'ln.connect("tls://127.0.0.1:8786", credentials="/run/u/lepton-clusters/ab")'
    );
  });
  it('knows active statuses', () => {
    expect(isActive('running')).toBe(true);
    expect(isActive('queued')).toBe(true);
    expect(isActive('succeeded')).toBe(false);
    expect(isActive('failed')).toBe(false);
    expect(isActive(undefined)).toBe(false);
  });
});

describe('newlyFinished', () => {
  it('announces only jobs seen active before and finished now', () => {
    const before = new Map([
      ['a', 'running'],
      ['b', 'queued'],
      ['c', 'succeeded']
    ]);
    const now = [
      { id: 'a', status: 'succeeded' },
      { id: 'b', status: 'running' },
      { id: 'c', status: 'succeeded' },
      { id: 'd', status: 'failed' }
    ];
    expect(newlyFinished(before, now).map(j => j.id)).toEqual(['a']);
    expect(newlyFinished(new Map([['x', 'running']]), [{ id: 'x', status: 'lost' }]).length).toBe(1);
  });
});

describe('formatUntil', () => {
  it('says when a schedule fires next', () => {
    expect(formatUntil(1000 + 300, 1000)).toBe('in 5 min 00 s');
    expect(formatUntil(1000, 1000)).toBe('now');
    expect(formatUntil(null, 1000)).toBe('paused');
  });
});

describe('clusterStateLabel', () => {
  it('says nothing for a running cluster, names re-attached and orphaned ones', () => {
    expect(clusterStateLabel('running')).toBeNull();
    expect(clusterStateLabel(undefined)).toBeNull();
    expect(clusterStateLabel('re-attached')?.text).toBe('re-attached');
    const orphan = clusterStateLabel('orphaned');
    expect(orphan?.text).toBe('orphaned');
    expect(orphan?.title).toContain('stop it');
  });
});

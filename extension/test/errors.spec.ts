import { describeStatus, errorFromResponse, LeptonApiError, parseSuccess } from '../src/errors';

describe('errorFromResponse', () => {
  it('reads the lepton error body', () => {
    const e = errorFromResponse(404, 'Not Found', JSON.stringify({ error: 'NotFoundError', message: "no cluster 'x'" }));
    expect(e).toBeInstanceOf(LeptonApiError);
    expect(e.status).toBe(404);
    expect(e.kind).toBe('NotFoundError');
    expect(e.message).toBe("no cluster 'x'");
    expect(e.userMessage).toBe("Not found: no cluster 'x'");
  });
  it('falls back to jupyter_server bodies with a reason', () => {
    const e = errorFromResponse(403, 'Forbidden', JSON.stringify({ message: '', reason: 'Forbidden by policy' }));
    expect(e.kind).toBe('HTTPError');
    expect(e.userMessage).toBe('Not allowed: Forbidden by policy');
  });
  it('does not show HTML error pages from proxies', () => {
    const e = errorFromResponse(502, 'Bad Gateway', '<html><body>nginx</body></html>');
    expect(e.message).toBe('Bad Gateway');
    expect(e.userMessage).toBe('Server error: Bad Gateway');
  });
  it('keeps short plain-text bodies and handles empty ones', () => {
    expect(errorFromResponse(400, '', 'bad thing').message).toBe('bad thing');
    expect(errorFromResponse(418, '', '').message).toBe('HTTP 418');
    expect(errorFromResponse(418, '', '').userMessage).toBe('HTTP 418');
  });
});

describe('status descriptions and success bodies', () => {
  it('describes the mapped statuses', () => {
    expect(describeStatus(400)).toBe('Invalid request');
    expect(describeStatus(409)).toBe('Conflict');
    expect(describeStatus(503)).toBe('Server error');
    expect(describeStatus(302)).toBe('');
  });
  it('parses bodies', () => {
    expect(parseSuccess<number[]>('[1,2]')).toEqual([1, 2]);
    expect(parseSuccess('')).toBeNull();
  });
});

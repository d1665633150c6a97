import { hasBody, isJsonMediaType, isLoopbackHost, loopbackHostAccepted, readBearer } from './request-checks';

describe('request checks', () => {
  it('reads a bearer token or names what is wrong', () => {
    expect(readBearer('Bearer pp_abc')).toEqual({ token: 'pp_abc' });
    expect(readBearer('bearer  pp_abc')).toEqual({ token: 'pp_abc' });
    expect(readBearer(undefined)).toEqual({ problem: expect.stringMatching(/^missing bearer token/) });
    for (const bad of ['Basic dXNlcjpwdw==', 'Bearer', 'Bearer a b', 'pp_abc']) {
      expect(readBearer(bad)).toEqual({ problem: expect.stringMatching(/^malformed Authorization/) });
    }
  });

  it('takes only application/json bodies', () => {
    expect(isJsonMediaType('application/json')).toBe(true);
    expect(isJsonMediaType('Application/JSON; charset=utf-8')).toBe(true);
    for (const t of [
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/jsonp',
    ]) {
      expect(isJsonMediaType(t)).toBe(false);
    }
    expect(hasBody({})).toBe(false);
    expect(hasBody({ 'content-length': '0' })).toBe(false);
    expect(hasBody({ 'content-length': '2' })).toBe(true);
    expect(hasBody({ 'transfer-encoding': 'chunked' })).toBe(true);
  });

  it('accepts loopback Host headers only', () => {
    for (const ok of [
      '127.0.0.1',
      '127.0.0.1:12345',
      'localhost',
      'LOCALHOST:80',
      '[::1]:8080',
      '127.1.2.3',
      'app.localhost',
    ]) {
      expect(loopbackHostAccepted(ok)).toBe(true);
    }
    expect(loopbackHostAccepted(undefined)).toBe(true);
    for (const bad of [
      'evil.example',
      'evil.example:12345',
      '127.0.0.1.evil.example',
      '10.0.0.1',
      '[::2]',
      '',
      'localhost@evil',
      '127.0.0.256',
    ]) {
      expect(loopbackHostAccepted(bad)).toBe(false);
    }
    expect(isLoopbackHost('::1')).toBe(true);
  });
});

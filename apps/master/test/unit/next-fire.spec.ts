import { nextFireTime } from '../../src/schedule/next-fire';

describe('next fire time', () => {
  it('is the first time strictly after the given one, in the timezone', () => {
    const after = new Date('2025-03-01T00:00:00Z');
    expect(nextFireTime('0 0 1 1 *', 'Europe/Berlin', after).toISOString()).toBe('2025-12-31T23:00:00.000Z');
    expect(nextFireTime('0 0 1 1 *', 'UTC', after).toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(nextFireTime('*/15 * * * *', 'UTC', new Date('2025-03-01T10:15:00Z')).toISOString()).toBe(
      '2025-03-01T10:30:00.000Z',
    );
  });

  it('supports a seconds field', () => {
    expect(nextFireTime('* * * * * *', 'UTC', new Date('2025-03-01T00:00:00.400Z')).toISOString()).toBe(
      '2025-03-01T00:00:01.000Z',
    );
  });

  it('throws on a bad expression or timezone', () => {
    expect(() => nextFireTime('every day', 'UTC', new Date())).toThrow();
    expect(() => nextFireTime('* * * * *', 'Mars/Base', new Date())).toThrow(/timezone/i);
  });
});

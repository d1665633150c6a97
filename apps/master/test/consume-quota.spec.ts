import { consumeQuota, TAKEN_AT_CAP } from '../src/command/command-consumer.service';

/** MASTER_MAX_RUNNING_INSTANCES: what the next consume may take. */
describe('consumeQuota', () => {
  it('takes new runs up to the places left under the cap, at most a batch', () => {
    expect(consumeQuota(0, 1000, 100)).toEqual({ batchSize: 100 });
    expect(consumeQuota(998, 1000, 100)).toEqual({ batchSize: 2 });
    expect(consumeQuota(1, 2, 100)).toEqual({ batchSize: 1 });
  });

  it('at the cap (or above it, after recoveries) takes recoveries only, never nothing', () => {
    expect(consumeQuota(2, 2, 100)).toEqual({ batchSize: 100, onlyTypes: TAKEN_AT_CAP });
    expect(consumeQuota(5, 2, 100)).toEqual({ batchSize: 100, onlyTypes: TAKEN_AT_CAP });
    expect(TAKEN_AT_CAP).toEqual(['RECOVER_TOLERANCE_FAULT_PROCESS']);
  });
});

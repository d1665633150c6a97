import { BadRequestError } from '../common/api-errors';
import { checkTenant } from './workflows.service';

describe('checkTenant', () => {
  it('lets a workflow without a tenant through, and one naming an allowed tenant', () => {
    expect(() => checkTenant({}, [])).not.toThrow();
    expect(() => checkTenant({ tenant: 'etl' }, ['reports', 'etl'])).not.toThrow();
  });

  it('refuses any tenant while tenants are off, and one not in TASK_TENANTS, naming the field', () => {
    expect(() => checkTenant({ tenant: 'etl' }, [])).toThrow(BadRequestError);
    expect(() => checkTenant({ tenant: 'etl' }, [])).toThrow(
      'workflow: "tenant" is not allowed: tenants are off on this cluster (TASK_TENANTS is empty)',
    );
    expect(() => checkTenant({ tenant: 'root' }, ['etl'])).toThrow(
      'workflow: "tenant" "root" is not one of TASK_TENANTS (etl)',
    );
  });
});

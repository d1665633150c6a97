import { METHOD_METADATA, MODULE_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { RequestMethod } from '@nestjs/common';
import { ApiV1Module } from '../api-v1.module';
import { SCOPE_METADATA } from './scope.decorator';

/**
 * Every route handler under /api/v1 declares the scope it needs (DESIGN.md section 11), and
 * every GET needs `read`. Read from the controllers' own metadata, so a handler added without
 * @Scope fails here before any server starts (auth.int-spec checks the live route list too).
 */
describe('@Scope on every /api/v1 route', () => {
  const controllers = (Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, ApiV1Module) ?? []) as Array<
    new (...args: never[]) => unknown
  >;
  const handlers = controllers.flatMap((controller) =>
    Object.getOwnPropertyNames(controller.prototype)
      .map((name) => ({ controller, name, fn: (controller.prototype as Record<string, unknown>)[name] }))
      .filter(({ name, fn }) => name !== 'constructor' && typeof fn === 'function')
      .filter(({ fn }) => Reflect.getMetadata(PATH_METADATA, fn as object) !== undefined),
  );

  it('finds the routes', () => {
    expect(controllers.length).toBeGreaterThanOrEqual(9);
    expect(handlers.length).toBeGreaterThanOrEqual(36);
  });

  it.each(handlers.map((h) => [`${h.controller.name}.${h.name}`, h.fn] as const))('%s', (_name, fn) => {
    const scope = Reflect.getMetadata(SCOPE_METADATA, fn as object) as string | undefined;
    expect(['read', 'run', 'edit', 'admin']).toContain(scope);
    if (Reflect.getMetadata(METHOD_METADATA, fn as object) === RequestMethod.GET) {
      expect(['read', 'admin']).toContain(scope);
    }
  });
});

import {
  Module,
  RequestMethod,
  type DynamicModule,
  type MiddlewareConsumer,
  type NestModule,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, RouterModule } from '@nestjs/core';
import { ConfigModule, type ApiServerConfig } from '@porpoise/common';
import { DaoModule } from '@porpoise/dao';
import { RegistryModule } from '@porpoise/registry';
import { ApiV1Module } from './api-v1.module';
import { AuditTargetInterceptor } from './auth/audit-target.interceptor';
import { ScopeGuard } from './auth/scope.guard';
import { ApiExceptionFilter } from './common/api-exception.filter';
import { DocsController } from './docs/docs.controller';
import { OpenApiService } from './docs/openapi.service';
import { HealthController } from './health/health.controller';
import { HealthService } from './health/health.service';
import { HttpMetricsMiddleware } from './metrics/http-metrics.middleware';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';

/**
 * The whole API server as one module: NestFactory.create(ApiServerModule.forRoot(config))
 * and listen() give every route of DESIGN.md section 4, /health, /metrics and /api/docs,
 * with JSON errors. The /api/v1 prefix comes from RouterModule rather than
 * app.setGlobalPrefix, so it holds however the module is booted. configureApiApp (api-app.ts)
 * adds the app-level settings: the auth gates ahead of the body parser and a larger body limit.
 * Booted without them, every /api/v1 route answers 401 (ScopeGuard fails closed).
 */
@Module({})
export class ApiServerModule implements NestModule {
  static forRoot(config: ApiServerConfig): DynamicModule {
    return {
      module: ApiServerModule,
      imports: [
        ConfigModule.forRoot(config),
        DaoModule,
        RegistryModule,
        ApiV1Module,
        RouterModule.register([{ path: 'api/v1', module: ApiV1Module }]),
      ],
      controllers: [HealthController, MetricsController, DocsController],
      providers: [
        HealthService,
        MetricsService,
        OpenApiService,
        HttpMetricsMiddleware,
        { provide: APP_FILTER, useClass: ApiExceptionFilter },
        // Every route's @Scope against the request's token (authenticated by auth-gates.ts).
        { provide: APP_GUARD, useClass: ScopeGuard },
        // A creating call's new id, from its answer, as the audit row's target.
        { provide: APP_INTERCEPTOR, useClass: AuditTargetInterceptor },
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
  }
}

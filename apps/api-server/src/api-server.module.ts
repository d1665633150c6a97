import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, type PorpoiseConfig } from '@porpoise/common';
import { DaoModule } from '@porpoise/dao';
import { RegistryModule } from '@porpoise/registry';
import { HealthController } from './health/health.controller';
import { HealthService } from './health/health.service';

@Module({})
export class ApiServerModule {
  static forRoot(config: PorpoiseConfig): DynamicModule {
    return {
      module: ApiServerModule,
      imports: [ConfigModule.forRoot(config), DaoModule, RegistryModule],
      controllers: [HealthController],
      providers: [HealthService],
    };
  }
}

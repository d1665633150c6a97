import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, type PorpoiseConfig } from '@porpoise/common';
import { RegistryModule } from '@porpoise/registry';

/** Workers never touch Postgres (as in DolphinScheduler): only the registry and gRPC. */
@Module({})
export class WorkerModule {
  static forRoot(config: PorpoiseConfig): DynamicModule {
    return { module: WorkerModule, imports: [ConfigModule.forRoot(config), RegistryModule] };
  }
}

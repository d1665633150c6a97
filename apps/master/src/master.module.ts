import { Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule, type PorpoiseConfig } from '@porpoise/common';
import { DaoModule } from '@porpoise/dao';
import { RegistryModule } from '@porpoise/registry';

@Module({})
export class MasterModule {
  static forRoot(config: PorpoiseConfig): DynamicModule {
    return { module: MasterModule, imports: [ConfigModule.forRoot(config), DaoModule, RegistryModule] };
  }
}

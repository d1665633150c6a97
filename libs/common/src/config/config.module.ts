import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { NodeConfig } from './config.types';

/** Injection token of the node's validated configuration (its role's NodeConfig). */
export const PORPOISE_CONFIG = Symbol('PORPOISE_CONFIG');

/** Makes the configuration, validated once in main.ts, injectable everywhere. */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: NodeConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: PORPOISE_CONFIG, useValue: config }],
      exports: [PORPOISE_CONFIG],
    };
  }
}

import { Global, Module, type DynamicModule } from '@nestjs/common';
import { CLOCK, systemClock, type Clock } from '../time/clock';
import type { NodeConfig } from './config.types';

/** Injection token of the node's validated configuration (its role's NodeConfig). */
export const PORPOISE_CONFIG = Symbol('PORPOISE_CONFIG');

/**
 * Makes the configuration, validated once in main.ts, and the node's one Clock injectable
 * everywhere (global, so libs' modules such as the registry see the same clock as the app).
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: NodeConfig, clock: Clock = systemClock): DynamicModule {
    return {
      module: ConfigModule,
      providers: [
        { provide: PORPOISE_CONFIG, useValue: config },
        { provide: CLOCK, useValue: clock },
      ],
      exports: [PORPOISE_CONFIG, CLOCK],
    };
  }
}

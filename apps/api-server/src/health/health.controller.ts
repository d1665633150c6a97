import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiProperty, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { HealthService, type HealthReport } from './health.service';
import { OpenRoute } from '../auth/scope.decorator';

class HealthDto {
  @ApiProperty({ enum: ['ok', 'unavailable'] }) status!: string;
  @ApiProperty({ type: String, example: 'ok', description: '"ok" or the name of the error' })
  database!: string;
  @ApiProperty({ type: String, example: 'ok', description: '"ok" or the name of the error' })
  registry!: string;
}

@ApiTags('operations')
@OpenRoute()
@Controller()
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** 200 when Postgres and the registry answer, 503 otherwise. Outside the /api/v1 prefix. */
  @Get('health')
  @ApiOperation({ summary: 'Whether this API server reaches Postgres and the registry.' })
  @ApiResponse({ status: 200, type: HealthDto })
  @ApiResponse({ status: 503, type: HealthDto, description: 'Postgres or the registry cannot be reached.' })
  async get(@Res({ passthrough: true }) res: Response): Promise<HealthReport> {
    const report = await this.health.check();
    res.status(report.status === 'ok' ? 200 : 503);
    return report;
  }
}

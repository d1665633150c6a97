import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { MetricsService } from './metrics.service';
import { OpenRoute } from '../auth/scope.decorator';

@ApiTags('operations')
@OpenRoute()
@Controller()
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  /** Outside the /api/v1 prefix, where Prometheus looks by default. */
  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics (text exposition format).' })
  @ApiProduces('text/plain')
  @ApiResponse({ status: 200, description: 'Prometheus text.', schema: { type: 'string' } })
  async get(@Res({ passthrough: true }) res: Response): Promise<string> {
    const text = await this.metrics.text();
    res.setHeader('Content-Type', this.metrics.contentType);
    return text;
  }
}

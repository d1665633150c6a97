import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ErrorDto } from '../common/error.dto';
import { queryReader } from '../common/input';
import { ClusterNodesDto } from './cluster.dto';
import { ClusterService } from './cluster.service';
import type { MasterNode, WorkerNode } from './node-heartbeat';
import { Scope } from '../auth/scope.decorator';

@ApiTags('cluster')
@Controller('cluster')
export class ClusterController {
  constructor(private readonly cluster: ClusterService) {}

  @Get('nodes')
  @Scope('read')
  @ApiOperation({
    summary: 'Live masters and workers with their last heartbeat, read from the registry.',
    description: 'Entries whose heartbeat JSON is invalid are left out (and logged).',
  })
  @ApiResponse({ status: 200, type: ClusterNodesDto })
  @ApiResponse({ status: 503, type: ErrorDto, description: 'The registry cannot be reached.' })
  nodes(@Query() query: unknown): Promise<{ masters: MasterNode[]; workers: WorkerNode[] }> {
    queryReader(query, []);
    return this.cluster.nodes();
  }
}

import { ApiProperty } from '@nestjs/swagger';

/* OpenAPI documentation of GET /cluster/nodes (the heartbeat JSON each node keeps in the registry). */

export class MasterNodeDto {
  @ApiProperty({ type: String, example: '127.0.0.1:5678', description: 'The registry key name.' })
  address!: string;
  @ApiProperty({ type: String }) host!: string;
  @ApiProperty({ type: Number }) port!: number;
  @ApiProperty({ type: Number, description: 'Epoch milliseconds.' }) startTime!: number;
  @ApiProperty({ type: Number, description: 'Epoch milliseconds of the last heartbeat.' })
  heartbeatTime!: number;
  @ApiProperty({ type: Number }) cpuUsage!: number;
  @ApiProperty({ type: Number }) memoryUsage!: number;
  @ApiProperty({ type: Number }) loadAverage!: number;
  @ApiProperty({ type: Boolean }) serving!: boolean;
}

export class WorkerNodeDto extends MasterNodeDto {
  @ApiProperty({ type: String }) group!: string;
  @ApiProperty({ type: Number }) runningTasks!: number;
  @ApiProperty({ type: Number }) capacity!: number;
}

export class ClusterNodesDto {
  @ApiProperty({ type: [MasterNodeDto] }) masters!: MasterNodeDto[];
  @ApiProperty({ type: [WorkerNodeDto] }) workers!: WorkerNodeDto[];
}

import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { CommandType, TaskState, WorkflowState } from '@porpoise/common';

/** bigint ids come back from pg as strings; ids stay below 2^53, so numbers are safe. */
const bigintAsNumber = { from: (v: string | null) => (v === null ? null : Number(v)), to: (v: unknown) => v };

@Entity('workflow_instance')
export class WorkflowInstanceEntity {
  @PrimaryColumn('bigint', { generated: 'increment', transformer: bigintAsNumber }) id!: number;
  @Column('text', { name: 'workflow_code' }) workflowCode!: string;
  @Column('integer', { name: 'workflow_version' }) workflowVersion!: number;
  @Column('text') state!: WorkflowState;
  @Column('text', { nullable: true }) host!: string | null;
  @Column('bigint', { transformer: bigintAsNumber }) epoch!: number;
  @Column('text', { name: 'command_type' }) commandType!: CommandType;
  @Column('jsonb') params!: Record<string, string>;
  @Column('timestamptz', { name: 'schedule_time', nullable: true }) scheduleTime!: Date | null;
  @Column('timestamptz', { name: 'start_time', nullable: true }) startTime!: Date | null;
  @Column('timestamptz', { name: 'end_time', nullable: true }) endTime!: Date | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}

@Entity('task_instance')
export class TaskInstanceEntity {
  @PrimaryColumn('bigint', { generated: 'increment', transformer: bigintAsNumber }) id!: number;
  @Column('bigint', { name: 'workflow_instance_id', transformer: bigintAsNumber })
  workflowInstanceId!: number;
  @Column('text') name!: string;
  @Column('text') state!: TaskState;
  @Column('text', { nullable: true }) host!: string | null;
  @Column('integer') attempt!: number;
  @Column('timestamptz', { name: 'start_time', nullable: true }) startTime!: Date | null;
  @Column('timestamptz', { name: 'end_time', nullable: true }) endTime!: Date | null;
  @Column('integer', { name: 'exit_code', nullable: true }) exitCode!: number | null;
  @Column('text', { name: 'log_path', nullable: true }) logPath!: string | null;
  @Column('text', { nullable: true }) message!: string | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}

@Entity('command')
export class CommandEntity {
  @PrimaryColumn('bigint', { generated: 'increment', transformer: bigintAsNumber }) id!: number;
  @Column('text') type!: CommandType;
  @Column('text', { name: 'workflow_code' }) workflowCode!: string;
  @Column('integer', { name: 'workflow_version' }) workflowVersion!: number;
  @Column('bigint', { name: 'workflow_instance_id', transformer: bigintAsNumber })
  workflowInstanceId!: number;
  @Column('jsonb') params!: Record<string, string>;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}

@Entity('schedule')
export class ScheduleEntity {
  @PrimaryColumn('bigint', { generated: 'increment', transformer: bigintAsNumber }) id!: number;
  @Column('text', { name: 'workflow_code' }) workflowCode!: string;
  @Column('text') cron!: string;
  @Column('text') timezone!: string;
  @Column('timestamptz', { name: 'next_fire_time', nullable: true }) nextFireTime!: Date | null;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}

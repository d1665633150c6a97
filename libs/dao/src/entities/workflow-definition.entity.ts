import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { EdgeDefinition, TaskDefinition } from '@porpoise/common';

@Entity('workflow_definition')
export class WorkflowDefinitionEntity {
  @PrimaryColumn('text') code!: string;
  @Column('text') name!: string;
  @Column('text') description!: string;
  @Column('integer') version!: number;
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
  @Column('timestamptz', { name: 'updated_at' }) updatedAt!: Date;
}

@Entity('workflow_definition_version')
export class WorkflowDefinitionVersionEntity {
  @PrimaryColumn('text') code!: string;
  @PrimaryColumn('integer') version!: number;
  @Column('text') name!: string;
  @Column('text') description!: string;
  @Column('jsonb') tasks!: TaskDefinition[];
  @Column('jsonb') edges!: EdgeDefinition[];
  @Column('timestamptz', { name: 'created_at' }) createdAt!: Date;
}

import { ApiProperty } from '@nestjs/swagger';

/* OpenAPI documentation of the data source routes. */

export class DatasourceBodyDto {
  @ApiProperty({ type: String, example: 'warehouse', description: 'What SQL tasks name in sql.datasource.' })
  name!: string;
  @ApiProperty({ type: String, enum: ['postgres'] }) type!: string;
  @ApiProperty({
    type: String,
    example: 'postgres://etl:secret@db.internal:5432/warehouse',
    description: 'Stored encrypted; never shown again (answers carry it with the password replaced).',
  })
  url!: string;
}

export class DatasourceDto {
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({ type: String }) type!: string;
  @ApiProperty({ type: String, example: 'postgres://etl:****@db.internal:5432/warehouse' }) url!: string;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time' }) updatedAt!: string;
}

export class DatasourceListDto {
  @ApiProperty({ type: [DatasourceDto] }) items!: DatasourceDto[];
}

import { ApiProperty } from '@nestjs/swagger';
import { API_SCOPES } from '@porpoise/common';

/* OpenAPI documentation of the token and audit routes. */

export class TokenBodyDto {
  @ApiProperty({ type: String, example: 'ci-deploy', maxLength: 100 }) name!: string;
  @ApiProperty({
    type: [String],
    enum: API_SCOPES,
    example: ['read', 'run'],
    description: 'read: every GET; run: trigger, control, backfill; edit: definitions; admin: all.',
  })
  scopes!: string[];
}

export class TokenDto {
  @ApiProperty({ type: Number }) id!: number;
  @ApiProperty({ type: String }) name!: string;
  @ApiProperty({ type: [String], enum: API_SCOPES }) scopes!: string[];
  @ApiProperty({ type: String, format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) revokedAt!: string | null;
}

export class CreatedTokenDto extends TokenDto {
  @ApiProperty({
    type: String,
    example: 'pp_3q2-7wEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE0',
    description: 'The bearer token. Shown only in this answer; the server keeps its SHA-256 only.',
  })
  token!: string;
}

export class TokenListDto {
  @ApiProperty({ type: [TokenDto] }) items!: TokenDto[];
}

export class AuditEventDto {
  @ApiProperty({ type: Number }) id!: number;
  @ApiProperty({ type: String, format: 'date-time' }) at!: string;
  @ApiProperty({ type: Number, nullable: true, description: 'null: ADMIN_TOKEN' }) tokenId!: number | null;
  @ApiProperty({ type: String, description: 'Who: the token\'s name ("admin" for ADMIN_TOKEN).' })
  tokenName!: string;
  @ApiProperty({ type: String, example: 'POST' }) method!: string;
  @ApiProperty({ type: String, example: '/api/v1/workflows/:code/runs' }) route!: string;
  @ApiProperty({ type: String, nullable: true, description: 'The id in the path, where there is one.' })
  target!: string | null;
  @ApiProperty({ type: Number, example: 202, description: 'The HTTP status answered.' }) status!: number;
}

export class AuditListDto {
  @ApiProperty({ type: [AuditEventDto] }) items!: AuditEventDto[];
  @ApiProperty({ type: Number }) total!: number;
}

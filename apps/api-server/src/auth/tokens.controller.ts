import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiNotFoundResponse,
  ApiOperation,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { ApiTokenRecord, AuditEventRecord } from '@porpoise/dao';
import { ErrorDto } from '../common/error.dto';
import { parseId, queryReader, readPage } from '../common/input';
import { Scope } from './scope.decorator';
import { AuditListDto, CreatedTokenDto, TokenBodyDto, TokenListDto } from './token.dto';
import { TokensService } from './tokens.service';

/** API tokens and the audit log (DESIGN.md section 11): the admin scope only. */
@ApiTags('tokens')
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid body, path or query; the message names the problem.',
})
@Controller()
export class TokensController {
  constructor(private readonly service: TokensService) {}

  @Post('tokens')
  @HttpCode(201)
  @Scope('admin')
  @ApiOperation({ summary: 'Create a token. The token is in this answer only; it is stored hashed.' })
  @ApiBody({ type: TokenBodyDto })
  @ApiResponse({ status: 201, type: CreatedTokenDto })
  create(@Body() body: unknown): Promise<ApiTokenRecord & { token: string }> {
    return this.service.create(body);
  }

  @Get('tokens')
  @Scope('admin')
  @ApiOperation({ summary: 'List tokens, revoked ones included (never a token or its hash).' })
  @ApiResponse({ status: 200, type: TokenListDto })
  list(): Promise<{ items: ApiTokenRecord[] }> {
    return this.service.list();
  }

  @Delete('tokens/:id')
  @HttpCode(204)
  @Scope('admin')
  @ApiOperation({ summary: 'Revoke a token: refused on every API server from now on.' })
  @ApiResponse({ status: 204, description: 'Revoked.' })
  @ApiNotFoundResponse({ type: ErrorDto })
  async revoke(@Param('id') id: string): Promise<void> {
    await this.service.revoke(parseId(id, 'token'));
  }

  @Get('audit')
  @Scope('admin')
  @ApiOperation({
    summary: 'The audit log, newest first: every call that changed something or was refused doing so.',
  })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 50' })
  @ApiQuery({ name: 'offset', required: false, type: Number, description: 'default 0' })
  @ApiResponse({ status: 200, type: AuditListDto })
  audit(@Query() query: unknown): Promise<{ items: AuditEventRecord[]; total: number }> {
    return this.service.audit(readPage(queryReader(query, ['limit', 'offset'])));
  }
}

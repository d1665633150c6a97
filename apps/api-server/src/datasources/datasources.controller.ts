import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { ErrorDto } from '../common/error.dto';
import { DatasourceBodyDto, DatasourceDto, DatasourceListDto } from './datasource.dto';
import { DatasourcesService, type DatasourceView } from './datasources.service';
import { Scope } from '../auth/scope.decorator';

@ApiTags('datasources')
@ApiBadRequestResponse({
  type: ErrorDto,
  description: 'Invalid body or path; the message names the problem (never the URL).',
})
@Controller('datasources')
export class DatasourcesController {
  constructor(private readonly datasources: DatasourcesService) {}

  @Post()
  @Scope('edit')
  @HttpCode(201)
  @ApiOperation({ summary: 'Register a data source for SQL tasks (its URL is stored encrypted).' })
  @ApiBody({ type: DatasourceBodyDto })
  @ApiResponse({ status: 201, type: DatasourceDto })
  @ApiConflictResponse({ type: ErrorDto, description: 'The name is taken.' })
  create(@Body() body: unknown): Promise<DatasourceView> {
    return this.datasources.create(body);
  }

  @Get()
  @Scope('read')
  @ApiOperation({ summary: 'List data sources (passwords never shown).' })
  @ApiResponse({ status: 200, type: DatasourceListDto })
  list(): Promise<{ items: DatasourceView[] }> {
    return this.datasources.list();
  }

  @Get(':name')
  @Scope('read')
  @ApiOperation({ summary: 'One data source (password never shown).' })
  @ApiResponse({ status: 200, type: DatasourceDto })
  @ApiNotFoundResponse({ type: ErrorDto })
  get(@Param('name') name: string): Promise<DatasourceView> {
    return this.datasources.get(name);
  }

  @Delete(':name')
  @Scope('edit')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a data source.' })
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiNotFoundResponse({ type: ErrorDto })
  async delete(@Param('name') name: string): Promise<void> {
    await this.datasources.delete(name);
  }
}

import { Controller, Get, Header, Param, StreamableFile } from '@nestjs/common';
import { ApiExcludeController, type OpenAPIObject } from '@nestjs/swagger';
import { createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { NotFoundError } from '../common/api-errors';
import { quote } from '../common/input';
import { OpenApiService } from './openapi.service';
import { OpenRoute } from '../auth/scope.decorator';

/**
 * swagger-ui-dist ships with @nestjs/swagger; resolve it from there so it is found whether or
 * not npm hoisted it.
 */
const SWAGGER_UI_DIR = dirname(
  require.resolve('swagger-ui-dist/package.json', { paths: [dirname(require.resolve('@nestjs/swagger'))] }),
);

/** The only files served from it (no path from the URL reaches the file system). */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'application/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'application/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
  'favicon-16x16.png': 'image/png',
};

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Porpoise API</title>
  <link rel="stylesheet" href="/api/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/swagger-ui-bundle.js"></script>
  <script src="/api/docs/swagger-init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/api/docs-json', dom_id: '#swagger-ui', deepLinking: true });\n`;

/** The browsable API page at /api/docs (served from this node, no CDN) and the document at /api/docs-json. */
@ApiExcludeController()
@OpenRoute()
@Controller('api')
export class DocsController {
  constructor(private readonly openApi: OpenApiService) {}

  @Get('docs')
  @Header('Content-Type', 'text/html; charset=utf-8')
  page(): string {
    return PAGE;
  }

  @Get('docs-json')
  document(): OpenAPIObject {
    return this.openApi.get();
  }

  @Get('docs/swagger-init.js')
  @Header('Content-Type', 'application/javascript; charset=utf-8')
  init(): string {
    return INIT;
  }

  @Get('docs/:asset')
  asset(@Param('asset') asset: string): StreamableFile {
    const type = Object.hasOwn(ASSETS, asset) ? ASSETS[asset] : undefined;
    if (!type) throw new NotFoundError(`no such documentation file ${quote(asset)}`);
    return new StreamableFile(createReadStream(join(SWAGGER_UI_DIR, asset)), { type });
  }
}

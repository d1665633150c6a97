import { Injectable, type INestApplication } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { BEARER_SCHEME } from '../auth/scope.decorator';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Builds the OpenAPI document from the controllers' decorators, on first request.
 *
 * SwaggerModule wants the INestApplication, which a module cannot inject. What its scanner
 * reads from it (the module container, the application config for a global prefix, the
 * HTTP adapter's type) is injectable or constructible, so the document is built here and the
 * API module stays self-contained: whoever creates the Nest app (main.ts, standalone, a
 * test) gets /api/docs without calling any setup function. We use no global prefix (the
 * /api/v1 routes come from RouterModule), so a fresh ApplicationConfig is the right one.
 */
@Injectable()
export class OpenApiService {
  private document: OpenAPIObject | undefined;

  constructor(
    private readonly modules: ModulesContainer,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  get(): OpenAPIObject {
    if (!this.document) {
      const app = {
        container: { getModules: () => this.modules },
        config: new ApplicationConfig(),
        getHttpAdapter: () => this.adapterHost.httpAdapter,
      } as unknown as INestApplication;
      const config = new DocumentBuilder()
        .setTitle('Porpoise API')
        .setDescription(
          'REST API of Porpoise, a workflow scheduler cluster modelled on Apache DolphinScheduler. ' +
            'Errors are { statusCode, error, message }; the message names the problem. Every /api/v1 ' +
            'operation needs `Authorization: Bearer <token>` with the scope it names (read, run, edit; ' +
            'admin implies all); /health, /metrics and /api/docs are open.',
        )
        .setVersion('1')
        .setLicense('Apache-2.0', 'https://www.apache.org/licenses/LICENSE-2.0')
        // Relative: the document is right for whichever address the server was reached at.
        .addServer('/', 'This API server')
        .addBearerAuth(
          {
            type: 'http',
            scheme: 'bearer',
            description:
              'ADMIN_TOKEN, or a token from POST /api/v1/tokens (pp_ followed by 43 base64url characters).',
          },
          BEARER_SCHEME,
        )
        .build();
      const document = SwaggerModule.createDocument(app, config);
      // Outside /api/v1 (/health, /metrics) no token is needed: say so, rather than leave it unsaid.
      for (const [path, item] of Object.entries(document.paths)) {
        if (path.startsWith('/api/v1/')) continue;
        for (const method of HTTP_METHODS) {
          const op = item[method];
          if (op) op.security = [];
        }
      }
      this.document = document;
    }
    return this.document;
  }
}

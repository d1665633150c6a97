import { Injectable, type INestApplication } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

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
            'Errors are { statusCode, error, message }; the message names the problem.',
        )
        .setVersion('1')
        .build();
      this.document = SwaggerModule.createDocument(app, config);
    }
    return this.document;
  }
}

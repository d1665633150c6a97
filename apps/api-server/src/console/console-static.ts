import { Logger, type INestApplication } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import {
  CONSOLE_CSP,
  defaultConsoleDir,
  isServerPath,
  loadConsoleFiles,
  resolveConsolePath,
  type ConsoleFile,
} from './console-files';

const logger = new Logger('Console');

function send(req: Request, res: Response, file: ConsoleFile): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  // A /#token= link never leaves in a Referer (fragments do not), and nothing else should either.
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Type', file.type);
  res.setHeader('ETag', file.etag);
  // Hashed assets forever; index.html revalidated each time, so a new build is seen at once.
  res.setHeader('Cache-Control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
  if (req.headers['if-none-match'] === file.etag) {
    res.status(304).end();
    return;
  }
  res.setHeader('Content-Length', String(file.body.length));
  res.status(200);
  if (req.method === 'HEAD') res.end();
  else res.end(file.body);
}

/**
 * Serves the console's static build at / (GET and HEAD only) with index.html for client-side
 * routes. Installed after the Host check (a rebound DNS name gets 421 here too) and outside
 * /api/v1: the files carry no data, the token is needed only by the calls they make.
 */
export function installConsole(app: INestApplication, dir = defaultConsoleDir()): void {
  const files = loadConsoleFiles(dir);
  if (files.size === 0) {
    logger.warn(`no console build in ${dir ?? '(no project root)'}: run "npm run build" to serve it at /`);
  }
  app.use((req: Request, res: Response, next: NextFunction) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || isServerPath(req.path)) return next();
    const file = resolveConsolePath(files, req.path);
    if (file) return send(req, res, file);
    if (files.size === 0 && req.path === '/') {
      res.status(404).type('text/plain').send('The console is not built: run "npm run build".\n');
      return;
    }
    next();
  });
}

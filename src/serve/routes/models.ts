/** `GET /v1/models` and `GET /v1/models/:id`: the one model this server serves, and the check every route makes. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

export interface ModelRoutesOptions {
  modelName: string;
  /** The model folder (the card's `root`). */
  root: string;
  maxModelLen: number;
  /** Unix seconds the server started (the card's `created`). */
  created: number;
}

/** 404 when a request names a model other than the served one (`null`: the request named none). */
export function checkModel(modelName: string, m: string | null): void {
  if (m !== null && m !== modelName)
    throw new ApiError(
      404,
      `The model \`${m}\` does not exist; this server serves \`${modelName}\``,
      'model',
      'model_not_found',
    );
}

export function registerModelRoutes(app: FastifyInstance, o: ModelRoutesOptions): void {
  const modelCard = () => ({
    id: o.modelName,
    object: 'model',
    created: o.created,
    owned_by: 'glmv',
    root: o.root,
    max_model_len: o.maxModelLen,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get('/v1/models/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    checkModel(o.modelName, req.params.id);
    return modelCard();
  });
}

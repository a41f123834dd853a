import type { Model } from '@anthropic-ai/sdk/resources/messages/messages';
import { AppError } from './errors';

/** The literal model ids of the installed SDK's `Model` union (its `string & {}` escape hatch removed). */
type KnownModel = Model extends infer M ? (M extends string ? (string extends M ? never : M) : never) : never;

/**
 * The newest Sonnet, Opus and Haiku in the installed @anthropic-ai/sdk's `Model` type. `satisfies`
 * makes an SDK upgrade that drops one of them a type error here, not a runtime 404 from Anthropic.
 */
export const DEFAULT_MODELS = {
  sonnet: 'claude-sonnet-5-5',
  opus: 'claude-opus-5-5',
  haiku: 'claude-haiku-5-5',
} as const satisfies Record<string, KnownModel>;

export type ModelTier = keyof typeof DEFAULT_MODELS;

/**
 * The seed's model names. Anthropic no longer serves them (and `claude-haiku-3-5-20241022` never
 * existed), so each resolves to its tier's configured model and the seed's examples keep working.
 */
export const MODEL_ALIASES: Record<string, ModelTier> = {
  'claude-sonnet-4-20250514': 'sonnet',
  'claude-opus-4-20250514': 'opus',
  'claude-haiku-3-5-20241022': 'haiku',
  'claude-3-5-haiku-20241022': 'haiku',
};

export interface ModelCatalog {
  allowed: string[];
  /** The model a new agent gets when it names none: the configured Sonnet. */
  defaultModel: string;
  tiers: Partial<Record<ModelTier, string>>;
}

export function createModelCatalog(allowed: string[]): ModelCatalog {
  const tiers: Partial<Record<ModelTier, string>> = {};
  for (const tier of Object.keys(DEFAULT_MODELS) as ModelTier[]) {
    const match = allowed.find((model) => model.includes(`-${tier}-`) || model.endsWith(`-${tier}`));
    if (match) tiers[tier] = match;
  }
  const defaultModel = tiers.sonnet ?? allowed[0];
  if (!defaultModel) throw new Error('ALLOWED_MODELS is empty');
  return { allowed, defaultModel, tiers };
}

/** The model id an agent stores: an allowed id as given, or an alias resolved to its tier. */
export function resolveModel(catalog: ModelCatalog, requested: string | undefined): string {
  if (requested === undefined) return catalog.defaultModel;
  if (catalog.allowed.includes(requested)) return requested;
  const tier = MODEL_ALIASES[requested];
  const resolved = tier ? catalog.tiers[tier] : undefined;
  if (resolved) return resolved;
  throw new AppError(
    'validation_error',
    `body.model: unknown model "${requested}"; allowed: ${catalog.allowed.join(', ')}`,
    {
      details: {
        issues: [{ field: 'body.model', message: 'unknown model' }],
        allowedModels: catalog.allowed,
        aliases: Object.keys(MODEL_ALIASES).filter(
          (alias) => catalog.tiers[MODEL_ALIASES[alias] as ModelTier],
        ),
      },
    },
  );
}

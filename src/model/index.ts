export { DisposedError, Mlp, createModel, validateArchitecture } from './mlp.js';
export type { BuildOptions, CreateModelOptions, LossAndGradients, Model, ModelArchitecture, Parameter, ParameterKind } from './mlp.js';
export { activationGain, initWeights, resolveInit } from './init.js';
export type { ConcreteInit } from './init.js';

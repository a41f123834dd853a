export * from './executor';
export * from './platform';

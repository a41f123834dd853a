export * from './code';
export * from './decide';
export * from './messages';
export * from './requests';

export * from './code';
export * from './customer';
export * from './decide';
export * from './messages';
export * from './notify';
export * from './requests';

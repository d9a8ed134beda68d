// The wire protocol as one import (`chat-relay/protocol`): the frame schemas
// and their types, the error and close codes, and the names `welcome.features`
// may carry.
export * from './protocol.js';
export { clientCloseCodes, closeCodes, errorCodes, shouldReconnect, type CloseCode } from './codes.js';
export { features, type Feature } from './features.js';

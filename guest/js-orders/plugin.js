// Ferry plugin entry point for componentize-js / jco (world `mapper` of
// `wit/mapping.wit`, contract ferry:mapping@0.1.0). The exported interface
// `mapping` is the object below; a thrown string becomes the WIT `err`.

import * as orders from './mapping.js';

function prepared(options) {
  const { options: opts, error } = orders.options(options);
  if (error !== undefined) throw error;
  return opts;
}

export const mapping = {
  describe() {
    return { name: orders.NAME, version: orders.VERSION, description: orders.DESCRIPTION, contract: orders.CONTRACT };
  },
  checkOptions(options) {
    prepared(options);
  },
  mapBatch(options, records) {
    const opts = prepared(options);
    return records.map((r) => orders.mapText(opts, r));
  },
};

/** Placeholder until the native addon binding lands: registers nothing. */
export {};

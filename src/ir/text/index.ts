/** The graph IR text form: `printProgram` writes it, `parseProgram` reads it back to the same nodes. */
export { parseDim, parseIExpr, parseProgram } from './parse.js';
export { isIExpr, isPrintableDim, printAttrs, printAttrValue, printIExpr, printName, printNodeLine, printNodes, printNumber, printProgram, printType } from './print.js';

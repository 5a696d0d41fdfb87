// express4 is express@4 installed under an alias, so the adapter is tested against both majors.
// The parts the tests touch (app, get, json) are typed the same in @types/express 5.
declare module "express4" {
  import express from "express";
  export default express;
}

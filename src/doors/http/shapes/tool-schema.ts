import { invalidArgument } from "../../../engine/errors.js";

/**
 * Checks a function tool's `parameters` as far as every upstream needs it
 * (OpenAI and Anthropic both want an object schema): the top-level `type`,
 * when given, is `object`; `properties` is an object of schemas; `required`
 * a list of names. A failure is a 400 whose `param` is `at` plus the field
 * (`tools[0].parameters.type`).
 */
export function checkToolSchema(params: Readonly<Record<string, unknown>> | null | undefined, at: string): void {
  if (!params) return;
  if (params["type"] !== undefined && params["type"] !== "object") {
    throw invalidArgument(
      `Invalid '${at}.type': a function's parameters must be a JSON Schema of type 'object', got ${JSON.stringify(params["type"])}.`,
      `${at}.type`,
    );
  }
  const props = params["properties"];
  if (props !== undefined && (typeof props !== "object" || props === null || Array.isArray(props))) {
    throw invalidArgument(`Invalid '${at}.properties': must be an object mapping argument names to schemas.`, `${at}.properties`);
  }
  if (props) {
    for (const [name, schema] of Object.entries(props as Record<string, unknown>)) {
      if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
        throw invalidArgument(`Invalid '${at}.properties.${name}': must be a JSON Schema object.`, `${at}.properties.${name}`);
      }
    }
  }
  const required = params["required"];
  if (required !== undefined && !(Array.isArray(required) && required.every((r) => typeof r === "string"))) {
    throw invalidArgument(`Invalid '${at}.required': must be an array of argument names.`, `${at}.required`);
  }
}

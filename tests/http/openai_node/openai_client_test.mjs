// The official `openai` npm client against a live mswa-server: completions, chat completions,
// both streamed, and an error it must surface as a typed APIError. Exits non-zero on the first
// broken expectation.
//   node openai_client_test.mjs http://127.0.0.1:PORT/v1 MODEL_NAME
import OpenAI from 'openai';
import assert from 'node:assert/strict';

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0 });

// Models.
const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [model]);

// Completions: greedy, so the streamed text equals the whole one.
const params = { model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true };
const completion = await client.completions.create(params);
assert.equal(completion.object, 'text_completion');
assert.equal(completion.choices[0].finish_reason, 'length');
assert.equal(completion.usage.completion_tokens, 12);
const text = completion.choices[0].text;
assert.ok(text.length > 0);

let streamed = '';
let finish = null;
const stream = await client.completions.create({ ...params, stream: true });
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.text ?? '';
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
assert.equal(streamed, text);
assert.equal(finish, 'length');

// Chat completions (the tiny model has no chat template: the plain fallback prompt).
const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello there' },
];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 10, temperature: 0 });
assert.equal(chat.object, 'chat.completion');
assert.equal(chat.choices[0].message.role, 'assistant');
const reply = chat.choices[0].message.content;

let deltas = '';
let usage = null;
const chatStream = await client.chat.completions.create({
  model, messages, max_tokens: 10, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of chatStream) {
  deltas += chunk.choices[0]?.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(deltas, reply);
assert.equal(usage.completion_tokens, chat.usage.completion_tokens);

// Errors: a refused field is a 400 BadRequestError naming it; an unknown model a 404.
await assert.rejects(
  client.chat.completions.create({ model, messages, n: 2 }),
  (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'n',
);
await assert.rejects(
  client.completions.create({ ...params, model: 'no-such-model' }),
  (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found',
);
console.log('openai npm client: completions, chat, streaming and errors OK');

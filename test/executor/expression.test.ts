import { describe, expect, it } from 'vitest';
import { compileExpression, ExpressionError } from '../../lib/executor/expression';

const event = {
  name: 'agent/message.received',
  data: { agentId: 'a1', chatId: 42, nested: { kind: 'vip' } },
};
const async = { name: 'agent/stopped', data: { agentId: 'a1' } };

describe('expression subset', () => {
  it.each([
    ['event.data.agentId', 'a1'],
    ['event.data.chatId', 42],
    ['event.data.nested.kind', 'vip'],
    ['event.data.missing', undefined],
    ["event.data.agentId + ':' + event.data.chatId", 'a1:42'],
    ['event.data.chatId + 1', 43],
    ['event.data.agentId == async.data.agentId', true],
    ["event.data.agentId != 'a1'", false],
    ['event.data.nested.kind == "vip" && event.data.chatId == 42', true],
    ["event.data.agentId == 'x' || (event.data.chatId == 42 && true)", true],
    ['event.data.missing == null', true],
  ])('%s evaluates to %j', (source, expected) => {
    expect(compileExpression(source).evaluate({ event, async })).toEqual(expected);
  });

  it('gives string keys for flow control', () => {
    expect(compileExpression('event.data.chatId').key({ event })).toBe('42');
    expect(compileExpression('event.data.agentId').key({ event })).toBe('a1');
  });

  it.each([
    ['event.data.items.size()', /function calls are not supported/],
    ['event.data.items.size() > 2', /unexpected ">" at 24/],
    ['event.data.n > 2', /unexpected ">"/],
    ['size(event.data)', /unknown name "size"/],
    ['event.data[0]', /unexpected "\["/],
    ["event.data.agentId == 'open", /unterminated string/],
    ['(event.data.a', /expected "\)"/],
    ['', /empty expression/],
    ['!event.data.flag', /unexpected "!"/],
  ])('rejects %j', (source, message) => {
    expect(() => compileExpression(source)).toThrow(ExpressionError);
    expect(() => compileExpression(source)).toThrow(message);
  });
});

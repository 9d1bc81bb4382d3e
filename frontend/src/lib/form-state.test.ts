import { describe, expect, it } from 'vitest';
import { ApiError } from './api';
import { CORRECT_MARKED, FormState } from './form-state.svelte';
import { errorId, fieldAttrs } from './forms';

/** A form whose inputs point at their messages as the components do (fieldAttrs). */
function formFor(state: FormState, fields: string[], group?: { name: string; inputs: number }) {
  const form = document.createElement('form');
  const inputs: Record<string, HTMLInputElement> = {};
  for (const field of fields) {
    const input = document.createElement('input');
    const describedBy = fieldAttrs(state.errors, field)['aria-describedby'];
    if (describedBy) input.setAttribute('aria-describedby', describedBy);
    inputs[field] = input;
    form.append(input);
  }
  const boxes: HTMLInputElement[] = [];
  if (group) {
    const div = document.createElement('div');
    div.setAttribute('role', 'group');
    div.setAttribute('aria-describedby', errorId(group.name));
    for (let i = 0; i < group.inputs; i++) {
      const box = document.createElement('input');
      box.type = 'checkbox';
      boxes.push(box);
      div.append(box);
    }
    form.append(div);
  }
  document.body.append(form);
  const detach = state.clearOnEdit(form);
  return { form, inputs, boxes, detach };
}

const typeInto = (input: HTMLInputElement, value: string) => {
  input.value = value;
  input.dispatchEvent(new Event('input', { bubbles: true }));
};

describe('a form clears a field’s problem when that field is edited', () => {
  it('drops only the edited field’s problem, and the general message with the last one', async () => {
    const state = new FormState(['name', 'duration_s']);
    await state.submit({ name: ['Enter a name.'], duration_s: ['Must be a number.'] }, async () => 1);
    expect(state.message).toBe(CORRECT_MARKED);
    const { inputs } = formFor(state, ['name', 'duration_s']);

    typeInto(inputs.name, 'Quick');
    expect(state.errors).toEqual({ duration_s: ['Must be a number.'] });
    expect(state.message).toBe(CORRECT_MARKED);

    inputs.duration_s.dispatchEvent(new Event('change', { bubbles: true }));
    expect(state.errors).toEqual({});
    expect(state.message).toBe('');
  });

  it('leaves everything alone when a field without a problem is edited', async () => {
    const state = new FormState(['name', 'tags']);
    await state.submit({ name: ['Enter a name.'] }, async () => 1);
    const { inputs } = formFor(state, ['name', 'tags']);
    typeInto(inputs.tags, 'smoke');
    expect(state.errors).toEqual({ name: ['Enter a name.'] });
    expect(state.message).toBe(CORRECT_MARKED);
  });

  it('clears the nested problems of a group when one of its inputs changes', async () => {
    const state = new FormState(['test_case_ids', 'criteria']);
    await state.submit({ test_case_ids: ['Pick at least one test case.'], 'criteria.0.metric': ['Name the metric.'] }, async () => 1);
    const { boxes, inputs } = formFor(state, ['criteria.0.metric'], { name: 'test_case_ids', inputs: 2 });
    boxes[1].click();
    expect(Object.keys(state.errors)).toEqual(['criteria.0.metric']);
    typeInto(inputs['criteria.0.metric'], 'energy');
    expect(state.errors).toEqual({});
  });

  it('keeps a server’s message that is not about the marked fields', async () => {
    const state = new FormState(['name']);
    await state.submit({}, async () => {
      throw new ApiError(409, 'already_exists', 'name: "Quick" is already taken', { name: ['"Quick" is already taken'] });
    });
    const { inputs } = formFor(state, ['name']);
    typeInto(inputs.name, 'Quick 2');
    expect(state.errors).toEqual({});
    expect(state.message).toBe('name: "Quick" is already taken');
  });

  it('stops listening when detached', async () => {
    const state = new FormState(['name']);
    await state.submit({ name: ['Enter a name.'] }, async () => 1);
    const { inputs, detach } = formFor(state, ['name']);
    detach();
    typeInto(inputs.name, 'Quick');
    expect(state.errors).toEqual({ name: ['Enter a name.'] });
  });
});

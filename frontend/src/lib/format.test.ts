import { describe, expect, it } from 'vitest';
import { capitalize } from './format';

describe('capitalize', () => {
  it('puts the first letter in upper case and leaves the rest', () => {
    expect(capitalize('test cases')).toBe('Test cases');
    expect(capitalize('environment')).toBe('Environment');
    expect(capitalize('')).toBe('');
  });
});

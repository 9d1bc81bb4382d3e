import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import DeviceFormDialog from './DeviceFormDialog.svelte';
import { makeDevice } from '../testing/fixtures';
import type { Device } from '../types';

const meter: Device = makeDevice({
  name: 'meter-1',
  model: 'EM-340',
  serial: 'SN1',
  firmware_version: '1.0.8',
  location: 'bench 3',
  labels: { type: 'dongle' },
  created_at: '2026-11-27T03:00:00+00:00',
  updated_at: '2026-11-27T03:00:00+00:00',
});

const fetchMock = vi.fn<(url: string, init?: RequestInit) => Promise<Response>>();

beforeEach(() => {
  vi.stubGlobal('fetch', fetchMock);
  // jsdom has no <dialog> methods
  HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) {
    this.open = true;
  };
  HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) {
    this.open = false;
  };
});
afterEach(() => {
  fetchMock.mockReset();
  vi.unstubAllGlobals();
});

describe('editing a device', () => {
  it('keeps what the user typed when a live update of the device arrives meanwhile', async () => {
    fetchMock.mockResolvedValue(new Response(JSON.stringify({ ...meter, firmware_version: '1.0.9' }), { status: 200 }));
    const view = render(DeviceFormDialog, { open: true, device: meter });
    const firmware = (await screen.findByLabelText('Firmware version')) as HTMLInputElement;
    expect(firmware.value).toBe('1.0.8');
    await fireEvent.input(firmware, { target: { value: '1.0.9' } });

    // the live event stream delivers the device again (e.g. its registration) while editing
    await view.rerender({ open: true, device: { ...meter, updated_at: '2026-11-27T03:00:01+00:00' } });
    expect(firmware.value).toBe('1.0.9');

    await fireEvent.click(screen.getByRole('button', { name: 'Save' }));
    await vi.waitFor(() => expect(fetchMock).toHaveBeenCalled());
    const [url, init] = fetchMock.mock.calls[0];
    expect(url).toBe('/api/devices/d1');
    expect(init?.method).toBe('PATCH');
    expect(JSON.parse(String(init?.body)).firmware_version).toBe('1.0.9');
  });
});

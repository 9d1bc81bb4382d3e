// Short confirmations ("Test case saved") and background errors, shown in a polite live region.

export type ToastKind = 'success' | 'error' | 'info';

export interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
}

class Toasts {
  items = $state<Toast[]>([]);
  private next = 1;

  show(message: string, kind: ToastKind = 'success', timeoutMs = kind === 'error' ? 8000 : 4000): void {
    const id = this.next++;
    this.items.push({ id, kind, message });
    setTimeout(() => this.dismiss(id), timeoutMs);
  }

  dismiss(id: number): void {
    this.items = this.items.filter((toast) => toast.id !== id);
  }
}

export const toasts = new Toasts();

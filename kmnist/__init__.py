"""kmnist: recognise handwritten Kuzushiji hiragana; data, models, training runs and evaluation."""

// EntryList<T>: the repeated part of a message (history records, channel list entries,
// cursors). A list to encode is a view of caller-owned entries; a decoded list is a view of
// already-validated wire bytes that decodes each entry as it is iterated, so decoding a
// batch allocates nothing. Either way the list borrows memory it does not own.
#pragma once

#include <cstdint>
#include <concepts>
#include <iterator>
#include <ranges>
#include <span>
#include <string_view>

#include "proto/field_codec.h"

namespace hoot::proto {

template <class T>
class EntryList {
 public:
  EntryList() = default;
  // Borrows `entries` (to encode); they must outlive the list. Implicit, so that an array,
  // vector or span of entries can stand where a list is expected.
  EntryList(std::span<const T> entries)  // NOLINT
      : entries_(entries), count_(static_cast<uint32_t>(entries.size())) {}
  template <class Range>
    requires std::ranges::contiguous_range<Range> &&
             std::same_as<std::ranges::range_value_t<Range>, T>
  EntryList(const Range& entries)  // NOLINT
      : EntryList(std::span<const T>(std::ranges::data(entries), std::ranges::size(entries))) {}
  // Borrows wire bytes that FieldReader::List has validated to hold `count` entries.
  static EntryList FromWire(std::string_view wire, uint32_t count) {
    EntryList list;
    list.wire_ = wire;
    list.count_ = count;
    list.from_wire_ = true;
    return list;
  }

  uint32_t size() const { return count_; }
  bool empty() const { return count_ == 0; }

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = const T*;
    using reference = const T&;

    Iterator() = default;
    Iterator(const EntryList* list, uint32_t index) : list_(list), index_(index) {
      if (list_->from_wire_) next_ = list_->wire_.data();
      Load();
    }
    const T& operator*() const { return current_; }
    const T* operator->() const { return &current_; }
    Iterator& operator++() {
      ++index_;
      Load();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(const Iterator& other) const { return index_ == other.index_; }

   private:
    void Load() {
      if (index_ >= list_->count_) return;
      if (!list_->from_wire_) {
        current_ = list_->entries_[index_];
        return;
      }
      const char* end = list_->wire_.data() + list_->wire_.size();
      internal::FieldReader reader(std::string_view(next_, end - next_),
                                   internal::MinBodyBytes<T>());
      current_ = T();
      T::Fields(current_, reader);
      next_ = reader.position();
    }

    const EntryList* list_ = nullptr;
    uint32_t index_ = 0;
    const char* next_ = nullptr;
    T current_{};
  };

  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, count_); }

  bool operator==(const EntryList& other) const {
    if (count_ != other.count_) return false;
    auto a = begin();
    auto b = other.begin();
    for (uint32_t i = 0; i < count_; ++i, ++a, ++b) {
      if (!(*a == *b)) return false;
    }
    return true;
  }

 private:
  std::span<const T> entries_;
  std::string_view wire_;
  uint32_t count_ = 0;
  bool from_wire_ = false;
};

}  // namespace hoot::proto
